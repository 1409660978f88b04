// The data page's upload (dashboard/pages/data.py): dcc.Upload ignores a file larger than its
// max_size without a word. Show the page's own message (rendered hidden, in the page's
// language) when the file chosen or dropped is too large; hide it for the next one.
(function () {
    function check(event) {
        const box = event.target && event.target.closest && event.target.closest("#data-upload-box");
        if (!box) {
            return;
        }
        const files = event.dataTransfer ? event.dataTransfer.files : event.target.files;
        const note = document.getElementById("data-upload-too-big");
        if (!files || !files.length || !note) {
            return;
        }
        note.hidden = !(files[0].size > Number(box.dataset.maxBytes));
    }
    document.addEventListener("change", check, true);
    document.addEventListener("drop", check, true);
})();
