-- 0005_checkout: a membership bought through a Stripe Checkout Session keeps the session it
-- was sold with, so that a retry with the same client Idempotency-Key answers the same
-- session instead of opening a second one. Applied in one transaction like the others.

-- NULL until Stripe answered; unique because one session pays for exactly one payment.
ALTER TABLE payments
	ADD COLUMN stripe_checkout_session_id text UNIQUE
		CHECK (length(stripe_checkout_session_id) BETWEEN 1 AND 255),
	-- Where the buyer pays; kept to send a retry to the same page.
	ADD COLUMN checkout_url text CHECK (length(checkout_url) BETWEEN 1 AND 2048);
