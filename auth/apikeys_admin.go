package auth

import (
	"context"
	"errors"

	"github.com/stroem/stroem"
)

// UserAPIKeyList lists another user's API keys, for admins (the web UI's
// user administration). An unknown user is a not-found error.
func (s *Service) UserAPIKeyList(ctx context.Context, userID string) ([]stroem.APIKey, error) {
	if _, err := s.UserGet(ctx, userID); err != nil {
		return nil, err
	}
	return s.APIKeyList(ctx, Identity{UserID: userID})
}

// UserAPIKeyRevoke deletes one of another user's API keys by prefix, for
// admins (an employee who left, a leaked key).
func (s *Service) UserAPIKeyRevoke(ctx context.Context, by Identity, userID, prefix string) error {
	if _, err := s.UserGet(ctx, userID); err != nil {
		return err
	}
	err := s.store.APIKeyDelete(ctx, userID, prefix)
	if errors.Is(err, stroem.ErrNotFound) {
		return stroem.Errorf(stroem.CodeNotFound, "API key %q not found", prefix)
	}
	if err == nil {
		s.log.Info("API key revoked by an admin", "user_id", userID, "prefix", prefix, "by", by.UserID)
	}
	return err
}
