package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
)

// SigningKeys returns every signing key, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]keys.Stored, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, algorithm, public_jwk, private_key, created_at, retired_at
		FROM signing_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	defer rows.Close()
	var out []keys.Stored
	for rows.Next() {
		var (
			k       keys.Stored
			retired sql.NullTime
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PublicJWK, &k.PrivateKey, &k.CreatedAt, &retired); err != nil {
			return nil, wrap("scan signing key", err)
		}
		k.CreatedAt, k.RetiredAt = k.CreatedAt.UTC(), timePtr(retired)
		out = append(out, k)
	}
	return out, wrap("list signing keys", rows.Err())
}

// CreateSigningKey stores a new key.
func (s *Store) CreateSigningKey(ctx context.Context, k keys.Stored) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, public_jwk, private_key, created_at, retired_at)
		VALUES ($1, $2, $3, $4, $5, NULL)`, k.ID, k.Algorithm, k.PublicJWK, k.PrivateKey, utc(k.CreatedAt))
	return wrap("create signing key", err)
}

// RetireSigningKeys retires every other unretired key of alg that is older
// than keepID (in SigningKeys' order: created_at, then id). Only older ones:
// of two rotations running at once, each would otherwise retire the other's
// new key and leave none to sign with.
func (s *Store) RetireSigningKeys(ctx context.Context, alg, keepID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE signing_keys SET retired_at = $3
		WHERE algorithm = $1 AND id <> $2 AND retired_at IS NULL
		AND EXISTS (SELECT 1 FROM signing_keys k WHERE k.id = $2
			AND (signing_keys.created_at < k.created_at OR (signing_keys.created_at = k.created_at AND signing_keys.id > k.id)))`,
		alg, keepID, utc(now))
	return wrap("retire signing keys", err)
}

// DeleteSigningKeys deletes keys retired before cutoff.
func (s *Store) DeleteSigningKeys(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1`, utc(cutoff))
	if err != nil {
		return 0, wrap("delete signing keys", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("delete signing keys", err)
}
