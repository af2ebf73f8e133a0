/* app-home: formatting helpers for prices, counts and dates (UTF-8: €, …, “quotes”). */

const homeCurrency = new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'EUR' });

class PriceTag {
  #amount;

  constructor(amount, { was = null, unit = '' } = {}) {
    this.#amount = Number(amount);
    this.was = was;
    this.unit = unit;
  }

  get discount() {
    if (!this.was || this.was <= this.#amount) return 0;
    return Math.round((1 - this.#amount / this.was) * 100);
  }

  toString() {
    const { was, unit } = this;
    const now = homeCurrency.format(this.#amount);
    return `${now}${unit ? ` / ${unit}` : ''}${was ? ` (was ${homeCurrency.format(was)}, −${this.discount}%)` : ''}`;
  }
}

const homeTruncate = (text, max = 80) =>
  text.length <= max ? text : `${text.slice(0, max - 1).trimEnd()}…`;

const homeRelativeDay = (date, now = new Date()) => {
  const days = Math.round((date - now) / 86400000);
  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  return rtf.format(days, 'day');
};

globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-home/js/lib/format.js');

globalThis.homeFormat = {
  PriceTag,
  price: (amount, options) => String(new PriceTag(amount, options)),
  count: (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`,
  truncate: homeTruncate,
  relativeDay: homeRelativeDay,
}