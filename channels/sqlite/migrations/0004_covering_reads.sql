-- Schema version 4: the status and device-list reads answered from indexes alone.

-- A user's methods are listed with these columns in every status and list read. With
-- them in the index, SQLite reads no table row: on a 10,000-user database the table
-- rows of one user's devices lie on as many pages as there are devices, and fetching
-- them was most of a status read (BENCHMARKS.md, 2026-11-30).
DROP INDEX methods_by_user;
CREATE INDEX methods_by_user ON methods (user_id, verified, kind, id, label, destination_hint, entry_point,
    created_at, verified_at, last_used_at);

-- The backup code counts (total, unused) of a status read, from the index.
DROP INDEX backup_codes_by_user;
CREATE INDEX backup_codes_by_user ON backup_codes (user_id, used_at);
