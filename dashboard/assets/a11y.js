/* benzo-monitor: what screen readers and keyboards need and Dash 4's components leave out.
 *
 * - <html lang> follows the URL's language after every in-app navigation (the server sets it
 *   on the first load: dashboard/app.py);
 * - radio items (Dash renders a listbox of options that hold radio buttons, which nests
 *   controls) become a native radio group named by the <label for=ID> beside them;
 * - a dropdown's hidden focus relay (an aria-hidden input in the tab order) leaves the tab
 *   order to the dropdown's own button;
 * - the date picker's wrapper loses the popup attributes a plain <div> may not carry (the
 *   input inside keeps its name);
 * - a file input is named by the visible text of its drop zone;
 * - the current page's and language's links say so (aria-current).
 * Each fix is idempotent and runs again whenever Dash re-renders (a MutationObserver).
 */
(function () {
  "use strict";
  var LANGS = ["fr", "nl", "en"];

  function setLang() {
    var lang = new URLSearchParams(window.location.search).get("lang");
    lang = LANGS.indexOf(lang) >= 0 ? lang : "fr";
    if (document.documentElement.lang !== lang) document.documentElement.lang = lang;
  }

  function labelFor(id) {
    if (!id) return null;
    var label = document.querySelector('label[for="' + CSS.escape(id) + '"]');
    if (label && !label.id) label.id = id + "-label";
    return label;
  }

  function fixRadios(root) {
    root.querySelectorAll(".dash-radioitems").forEach(function (group) {
      if (group.getAttribute("role") !== "radiogroup") group.setAttribute("role", "radiogroup");
      var label = labelFor(group.id);
      if (label && group.getAttribute("aria-labelledby") !== label.id) {
        group.setAttribute("aria-labelledby", label.id);
      }
      group.querySelectorAll("label[role], label[aria-selected]").forEach(function (option) {
        option.removeAttribute("role");
        option.removeAttribute("aria-selected");
      });
    });
  }

  function fixDropdowns(root) {
    root.querySelectorAll(".dash-dropdown-wrapper").forEach(function (wrapper) {
      var relay = wrapper.querySelector(":scope > .dash-dropdown-focus-target");
      var button = wrapper.querySelector(":scope > button.dash-dropdown");
      if (!relay || !button) return;
      if (relay.getAttribute("tabindex") !== "-1") relay.setAttribute("tabindex", "-1");
      if (!button.disabled && button.getAttribute("tabindex") !== "0") {
        button.setAttribute("tabindex", "0");
      }
      var label = labelFor(button.id);
      if (label) {
        var ids = label.id + " " + button.id + "-value";
        if (button.getAttribute("aria-labelledby") !== ids) {
          button.setAttribute("aria-labelledby", ids);
        }
      }
    });
  }

  function fixDatePickers(root) {
    root.querySelectorAll(".dash-datepicker-input-wrapper").forEach(function (wrapper) {
      ["aria-expanded", "aria-haspopup", "aria-labelledby", "aria-disabled"].forEach(function (a) {
        if (wrapper.hasAttribute(a)) wrapper.removeAttribute(a);
      });
    });
  }

  function fixUploads(root) {
    root.querySelectorAll('input[type="file"]').forEach(function (input) {
      if (input.hasAttribute("aria-label") || input.labels.length) return;
      var zone = input.parentElement;
      var text = zone ? zone.textContent.trim() : "";
      if (text) input.setAttribute("aria-label", text);
    });
  }

  function markCurrent(root) {
    root.querySelectorAll(".app-nav a, .app-language a").forEach(function (link) {
      var current = link.classList.contains("active");
      if (current && link.getAttribute("aria-current") !== "true") {
        link.setAttribute("aria-current", "true");
      } else if (!current && link.hasAttribute("aria-current")) {
        link.removeAttribute("aria-current");
      }
    });
  }

  var pending = false;
  function fixAll() {
    pending = false;
    setLang();
    fixRadios(document);
    fixDropdowns(document);
    fixDatePickers(document);
    fixUploads(document);
    markCurrent(document);
  }
  function schedule() {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(fixAll);
    }
  }

  function start() {
    fixAll();
    new MutationObserver(schedule).observe(document.body, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ["tabindex", "role", "aria-selected", "aria-expanded"],
    });
    window.addEventListener("popstate", schedule);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
