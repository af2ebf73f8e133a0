/* app-home: tiny DOM helpers shared by the home page scripts. */

const homeOnReady = (fn) => {
  if (typeof document === 'undefined') return false;
  if (document.readyState !== 'loading') {
    queueMicrotask(fn);
  } else {
    document.addEventListener('DOMContentLoaded', fn, { once: true });
  }
  return true;
};

const homeQueryAll = (selector, root) => {
  if (typeof document === 'undefined') return [];
  return Array.from((root ?? document).querySelectorAll(selector));
};

globalThis.homeOnReady = homeOnReady;
globalThis.homeQueryAll = homeQueryAll;
globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-home/js/lib/dom-ready.js');
// NB: this file deliberately ends with a line comment and no newline