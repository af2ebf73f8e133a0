/*!
 * es-shim (example vendor copy): small ES2019+ shims published as a shared library
 * at vendor/library/es-shim/shim.js. Never bundled; pages include it directly.
 */
(function (root) {
  'use strict';

  var define = function (obj, name, value) {
    if (!(name in obj)) {
      Object.defineProperty(obj, name, { value: value, configurable: true, writable: true });
    }
  };

  define(Object, 'fromEntries', function fromEntries(entries) {
    var out = {};
    Array.from(entries, function (pair) { out[pair[0]] = pair[1]; });
    return out;
  });

  define(Array.prototype, 'flat', function flat(depth) {
    var d = depth === undefined ? 1 : Number(depth);
    return d < 1 ? this.slice() : this.reduce(function (acc, item) {
      return acc.concat(Array.isArray(item) ? item.flat(d - 1) : item);
    }, []);
  });

  define(String.prototype, 'trimStart', String.prototype.trimLeft);
  define(String.prototype, 'trimEnd', String.prototype.trimRight);

  root.BOSCO_EXAMPLE = (root.BOSCO_EXAMPLE || []).concat('vendor/library/es-shim/shim.js');
})(typeof globalThis !== 'undefined' ? globalThis : this);
