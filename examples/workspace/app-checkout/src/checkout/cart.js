/* app-checkout: basket model. This file starts with a UTF-8 BOM and its last line is code
 * followed by a line comment, with no semicolon and no newline at the end. */

const CART_STORAGE_KEY = 'checkout:cart:v2';

class Cart {
  #lines = new Map();

  constructor(currency = 'EUR') {
    this.currency = currency;
  }

  add(sku, { name = sku, price = 0, qty = 1 } = {}) {
    const line = this.#lines.get(sku) ?? { sku, name, price, qty: 0 };
    line.qty += qty;
    this.#lines.set(sku, line);
    return this;
  }

  remove(sku, qty = Infinity) {
    const line = this.#lines.get(sku);
    if (!line) return this;
    line.qty -= Math.min(qty, line.qty);
    if (line.qty === 0) this.#lines.delete(sku);
    return this;
  }

  get lines() {
    return [...this.#lines.values()];
  }

  get count() {
    return this.lines.reduce((sum, { qty }) => sum + qty, 0);
  }

  get total() {
    return Math.round(this.lines.reduce((sum, l) => sum + l.price * l.qty, 0) * 100) / 100;
  }

  describe() {
    const { count, total } = this;
    return `${count} item${count === 1 ? '' : 's'}${count ? `, ${total.toFixed(2)} ${this.currency}` : ''}`;
  }

  save(storage = typeof localStorage !== 'undefined' ? localStorage : null) {
    storage?.setItem(CART_STORAGE_KEY, JSON.stringify(this.lines));
    return Boolean(storage);
  }

  static load(storage = typeof localStorage !== 'undefined' ? localStorage : null) {
    const cart = new Cart();
    const raw = storage?.getItem(CART_STORAGE_KEY);
    for (const line of raw ? JSON.parse(raw) : []) cart.add(line.sku, line);
    return cart;
  }
}

globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-checkout/checkout/cart.js');
globalThis.CheckoutCart = Cart // exported for payment.js