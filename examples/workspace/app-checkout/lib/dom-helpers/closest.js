/*! dom-helpers/closest (example vendor copy): Element#closest and #matches for old browsers. */
(function (root) {
  'use strict';

  var proto = typeof Element !== 'undefined' ? Element.prototype : null;
  if (proto) {
    if (!proto.matches) {
      proto.matches = proto.msMatchesSelector || proto.webkitMatchesSelector;
    }
    if (!proto.closest) {
      proto.closest = function closest(selector) {
        var el = this;
        do {
          if (el.matches(selector)) return el;
          el = el.parentElement || el.parentNode;
        } while (el !== null && el.nodeType === 1);
        return null;
      };
    }
  }

  root.BOSCO_EXAMPLE = (root.BOSCO_EXAMPLE || []).concat('vendor/library/dom-helpers/closest.js');
})(typeof globalThis !== 'undefined' ? globalThis : this);
