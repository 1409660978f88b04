/*
 * The date picker in the reader's language (dashboard/locale.py).
 *
 * Dash 4's DatePickerSingle/Range take month and day names from `window.dateFns.locale` (a
 * date-fns locale per language, matched against the browser's languages) and write their
 * buttons' labels in English. The reader's language is the URL's, not the browser's, so the
 * getter below offers only the URL's language: a date-fns locale built from the names Babel
 * gave the page (#app-locale-data, written by the shell for each URL). The same data gives the
 * words for the picker's buttons (aria-label), replaced as soon as the picker draws them.
 */
(function () {
  "use strict";
  var cache = {raw: null, data: null, locale: null};

  function payload() {
    var el = document.getElementById("app-locale-data");
    var raw = el ? el.textContent : "";
    if (!raw) return null;
    if (raw !== cache.raw) {
      try {
        cache.data = JSON.parse(raw);
      } catch (e) {
        cache.data = null;
      }
      cache.raw = raw;
      cache.locale = cache.data ? buildLocale(cache.data) : null;
    }
    return cache.data;
  }

  // A date-fns localize/match function over a list of names, by width.
  function byWidth(lists) {
    return function (value, options) {
      var width = (options && options.width) || "wide";
      var list = lists[width] || lists.wide;
      return list[value];
    };
  }

  function matcher(lists) {
    return function (text, options) {
      var width = (options && options.width) || "wide";
      var order = [width, "wide", "abbreviated", "short", "narrow"];
      var lower = text.toLowerCase();
      for (var w = 0; w < order.length; w++) {
        var list = lists[order[w]];
        if (!list) continue;
        // Longest names first ("juin" before "juil." share no prefix, "ma" vs "mars" do).
        var idx = list
          .map(function (name, i) { return [name, i]; })
          .sort(function (a, b) { return b[0].length - a[0].length; });
        for (var k = 0; k < idx.length; k++) {
          var name = idx[k][0].toLowerCase();
          if (name && lower.indexOf(name) === 0) {
            var value = idx[k][1];
            if (options && options.valueCallback) value = options.valueCallback(value);
            return {value: value, rest: text.slice(name.length)};
          }
        }
      }
      return null;
    };
  }

  function buildLocale(d) {
    var months = {wide: d.months, abbreviated: d.monthsShort, narrow: d.months.map(function (m) { return m.charAt(0).toUpperCase(); })};
    var days = {wide: d.days, abbreviated: d.daysAbbreviated, short: d.daysShort, narrow: d.daysNarrow};
    var same = function (v) { return String(v); };
    var none = function () { return null; };
    return {
      code: d.lang,
      localize: {
        ordinalNumber: same,
        era: function (v) { return v ? "AD" : "BC"; },
        quarter: function (v) { return "Q" + v; },
        month: byWidth(months),
        day: byWidth(days),
        dayPeriod: function (v) { return v; }
      },
      formatLong: {
        date: function () { return "dd/MM/y"; },
        time: function () { return "HH:mm"; },
        dateTime: function () { return "{{date}} {{time}}"; }
      },
      match: {
        ordinalNumber: function (text) {
          var m = /^\d+/.exec(text);
          return m ? {value: parseInt(m[0], 10), rest: text.slice(m[0].length)} : null;
        },
        era: none,
        quarter: none,
        month: matcher(months),
        day: matcher(days),
        dayPeriod: none
      },
      formatDistance: function (token, count) { return String(count); },
      formatRelative: function () { return "P"; },
      options: {weekStartsOn: 1, firstWeekContainsDate: 4}
    };
  }

  window.dateFns = window.dateFns || {};
  Object.defineProperty(window.dateFns, "locale", {
    configurable: true,
    get: function () {
      var d = payload();
      if (!d || !cache.locale) return {};
      var locales = {};
      locales[d.lang] = cache.locale;
      return locales;
    }
  });

  // The picker's buttons: Dash labels them in English; put the catalogue's words on them.
  // The English label is kept in data-en-label, so a change of language relabels again.
  function relabel(root) {
    var d = payload();
    if (!d || !d.words) return;
    var nodes = (root.querySelectorAll ? root.querySelectorAll("[aria-label]") : []);
    for (var i = 0; i < nodes.length; i++) {
      var english = nodes[i].getAttribute("data-en-label") || nodes[i].getAttribute("aria-label");
      if (!Object.prototype.hasOwnProperty.call(d.words, english)) continue;
      var word = d.words[english];
      nodes[i].setAttribute("data-en-label", english);
      if (nodes[i].getAttribute("aria-label") !== word) nodes[i].setAttribute("aria-label", word);
    }
  }

  function start() {
    relabel(document);
    new MutationObserver(function (mutations) {
      for (var i = 0; i < mutations.length; i++) {
        var m = mutations[i];
        var target = m.target.nodeType === 1 ? m.target : m.target.parentElement;
        if (target && target.closest && target.closest("#app-locale")) {
          relabel(document);  // the language changed
        } else if (m.type === "attributes") {
          relabel(m.target.parentNode || document);
        } else {
          for (var j = 0; j < m.addedNodes.length; j++) {
            if (m.addedNodes[j].nodeType === 1) relabel(m.addedNodes[j].parentNode || document);
          }
        }
      }
    }).observe(document.body, {
      subtree: true, childList: true, characterData: true, attributes: true,
      attributeFilter: ["aria-label"]
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
