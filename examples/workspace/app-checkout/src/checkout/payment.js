(function (global) {
  'use strict';

  /* app-checkout: payment step. Starts with "(": it must not be glued to cart.js. */
  const Cart = global.CheckoutCart;
  const METHODS = Object.freeze(['card', 'paypal', 'invoice']);

  const maskCard = (number) => {
    const digits = String(number).replace(/\D+/g, '');
    return digits.length < 4 ? '' : `•••• ${digits.slice(-4)}`;
  };

  // Luhn check; "//" inside the regex below is not a comment.
  const isCardNumber = (value) => {
    const digits = String(value).replace(/[\s/-]+/g, '');
    if (!/^\d{12,19}$/.test(digits)) return false;
    let sum = 0;
    for (let i = 0; i < digits.length; i += 1) {
      let d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return sum % 10 === 0;
  };

  class PaymentForm {
    constructor(form, cart) {
      this.form = form;
      this.cart = cart;
      this.method = METHODS[0];
    }

    summary(card) {
      const masked = maskCard(card);
      return `Pay ${this.cart.describe()} by ${this.method}${masked ? ` (${masked})` : ''}`;
    }

    bind() {
      if (!this.form) return this;
      this.form.addEventListener('submit', (event) => {
        const card = this.form.elements.namedItem('card')?.value ?? '';
        if (this.method === 'card' && !isCardNumber(card)) {
          event.preventDefault();
          this.form.classList.add('is-invalid');
        }
      });
      return this;
    }
  }

  if (typeof document !== 'undefined' && Cart) {
    new PaymentForm(document.querySelector('form.payment'), Cart.load()).bind();
  }

  global.checkoutPayment = { PaymentForm, isCardNumber, maskCard, METHODS };
  global.BOSCO_EXAMPLE = (global.BOSCO_EXAMPLE || []).concat('app-checkout/checkout/payment.js');
})(globalThis);
