-- Per-limiter override of the server's policy for endpoints that cost money but are not
-- metered (batches, fine-tuning…) and unknown ones: NULL follows the server, else
-- 'refuse' | 'allow'. Existing limiters follow the server.
ALTER TABLE limiters ADD COLUMN unmetered_endpoints TEXT;
