-- A refused send is found by the id of the request it came in
-- (`sesame explain REQUEST_ID`).
ALTER TABLE rejections ADD COLUMN request_id TEXT;
CREATE INDEX rejections_by_request ON rejections (request_id) WHERE request_id IS NOT NULL;
