(() => {
  'use strict';

  /*
   * app-home: page controller. Starts with "(" on purpose: whatever file is
   * concatenated before this one must be terminated properly or this IIFE
   * becomes a call on the previous expression.
   */
  const onReady = globalThis.homeOnReady ?? (() => false);
  const $$ = globalThis.homeQueryAll ?? (() => []);
  const fmt = globalThis.homeFormat ?? {
    price: (amount) => `€${Number(amount).toFixed(2)}`,
    count: (n, word) => `${n} ${word}s`,
    truncate: (text) => text,
  };

  // Strings and regexes that look like comments; a minifier must keep them.
  const NOT_A_COMMENT = '/* keep me */ // and me';
  const EXTERNAL = /^https?:\/\//i;
  const SLASHES = /[/\\]+/g;

  const slug = (text) =>
    text.trim().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

  const isExternal = (href, origin = 'https://shop.example') =>
    EXTERNAL.test(href) && !href.startsWith(origin);

  const renderCard = ({ name, price, was, badge, tags = [] }) => `
    <article class="card${badge ? ` card--${slug(badge)}` : ''}" data-id="${slug(name)}">
      <h3 class="card__title">${fmt.truncate(name, 40)}</h3>
      <p class="card__price">${fmt.price(price, { was })}</p>
      ${tags.length ? `<ul class="card__tags">${tags.map((t) => `<li>${t}</li>`).join('')}</ul>` : ''}
    </article>`;

  class Carousel {
    static DEFAULTS = { interval: 5000, loop: true };

    constructor(root, options = {}) {
      this.root = root;
      this.options = { ...Carousel.DEFAULTS, ...options };
      this.index = 0;
      this.timer = null;
    }

    get slides() {
      return this.root ? $$('.hero__slide', this.root) : [];
    }

    go(step = 1) {
      const count = this.slides.length;
      if (!count) return this.index;
      const next = this.index + step;
      this.index = this.options.loop ? (next + count) % count : Math.min(Math.max(next, 0), count - 1);
      this.root?.style.setProperty('--x', `${-100 * this.index}%`);
      return this.index;
    }

    start() {
      this.stop();
      this.timer = setInterval(() => this.go(1), this.options.interval);
      return this;
    }

    stop() {
      clearInterval(this.timer);
      this.timer = null;
      return this;
    }
  }

  const FEATURED = [
    { name: 'Espresso cups, set of 4', price: 24, was: 32, badge: 'Sale', tags: ['kitchen'] },
    { name: 'Linen tea towel', price: 9.5 },
    { name: 'Walnut serving board / large', price: 48, badge: 'New' },
  ];

  const ratio = FEATURED.length / 2 / 1; // division, not a regex
  const summary = `${fmt.count(FEATURED.length, 'product')} featured${ratio > 1 ? `, ${FEATURED.filter((p) => p.badge).length} with a badge` : ''}`;

  onReady(() => {
    const grid = document.querySelector('[data-featured]');
    if (grid) grid.innerHTML = FEATURED.map(renderCard).join('');

    for (const link of $$('a[href]')) {
      if (isExternal(link.href, location.origin)) link.rel = 'noopener';
    }

    const hero = document.querySelector('.hero');
    if (hero) new Carousel(hero, { interval: 6000 }).start();
    document.documentElement.dataset.summary = summary;
  });

  globalThis.homeApp = { slug, isExternal, renderCard, Carousel, summary, NOT_A_COMMENT, SLASHES };
  globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-home/js/app.js');
})();
