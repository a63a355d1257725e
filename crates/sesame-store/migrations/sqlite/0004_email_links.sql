-- The token of an email identity's outstanding verification link, for
-- looking the identity up when the link is opened.
ALTER TABLE identities ADD COLUMN verify_token TEXT;
CREATE UNIQUE INDEX identities_verify_token ON identities (verify_token)
    WHERE verify_token IS NOT NULL;
