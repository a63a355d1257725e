-- The DKIM zone listener finds an Easy DKIM key by any of its identity's
-- three tokens. Tokens live in the identity's JSON; these expression indexes
-- make each lookup an index search instead of a scan.
CREATE INDEX identities_dkim_token0 ON identities (json_extract(data, '$.dkim.tokens[0]'));
CREATE INDEX identities_dkim_token1 ON identities (json_extract(data, '$.dkim.tokens[1]'));
CREATE INDEX identities_dkim_token2 ON identities (json_extract(data, '$.dkim.tokens[2]'));
