/*
 * app-home: polyfills, loaded in <head> (bundle "top") before anything else.
 * Only fills what the home page uses, and every fill is guarded so that the
 * file is a no-op on modern browsers and safe to run outside a browser.
 */
'use strict';

if (!Array.prototype.at) {
  Object.defineProperty(Array.prototype, 'at', {
    configurable: true,
    writable: true,
    value: function at(index) {
      const n = Math.trunc(index) || 0;
      const i = n < 0 ? this.length + n : n;
      return i >= 0 && i < this.length ? this[i] : undefined;
    },
  });
}

if (!Object.hasOwn) {
  Object.hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
}

if (typeof String.prototype.replaceAll !== 'function') {
  String.prototype.replaceAll = function replaceAll(search, replacement) {
    return this.split(search).join(replacement);
  };
}

if (typeof window !== 'undefined' && typeof window.requestIdleCallback !== 'function') {
  window.requestIdleCallback = (callback) =>
    setTimeout(() => callback({ didTimeout: false, timeRemaining: () => 0 }), 1);
}

globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-home/js/polyfills.js');
