"""Online top-up: the payment-provider seam (contract), Stripe and PayPal, the store."""
