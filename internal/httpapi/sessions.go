package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// sessionResponse is the reference's SessionResponse.
type sessionResponse struct {
	DeviceName      *string   `json:"device_name"`
	DeviceID        *string   `json:"device_id"`
	ID              string    `json:"id" format:"uuid"`
	IPAddress       *string   `json:"ip_address"`
	LocationCity    *string   `json:"location_city"`
	LocationCountry *string   `json:"location_country"`
	LastUsedAt      time.Time `json:"last_used_at"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	IsCurrent       bool      `json:"is_current" doc:"True for the session of the calling access token"`
	Kind            string    `json:"kind" enum:"api,browser" doc:"api: signed in through the API (an app or device holding tokens); browser: signed in on Gatehouse's own login page (a cookie)"`
}

type sessionList struct {
	Sessions []sessionResponse `json:"sessions"`
	Total    int               `json:"total"`
}

func (s *server) listMySessions(ctx context.Context, _ *struct{}) (*struct{ Body sessionList }, error) {
	actor := principalFrom(ctx).Actor
	list, err := s.Auth.Sessions(ctx, actor)
	if err != nil {
		return nil, err
	}
	out := make([]sessionResponse, len(list))
	for i, se := range list {
		out[i] = sessionResponse{DeviceName: se.DeviceName, DeviceID: se.DeviceID, ID: se.ID, IPAddress: se.IPAddress,
			LocationCity: se.LocationCity, LocationCountry: se.LocationCountry, LastUsedAt: se.LastUsedAt,
			CreatedAt: se.CreatedAt, ExpiresAt: se.ExpiresAt, IsCurrent: se.ID == actor.SessionID, Kind: se.Kind}
	}
	return &struct{ Body sessionList }{Body: sessionList{Sessions: out, Total: len(out)}}, nil
}

type sessionIDInput struct {
	SessionID string `path:"session_id" doc:"Session id (UUID)"`
}

func (s *server) revokeSession(ctx context.Context, in *sessionIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("session_id", in.SessionID)
	if err != nil {
		return nil, err
	}
	se, err := s.Auth.RevokeSession(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return message("Session revoked: " + deviceLabel(se)), nil
}

func deviceLabel(se auth.Session) string {
	if se.DeviceName == nil || *se.DeviceName == "" {
		return "Unknown device"
	}
	return *se.DeviceName
}

func (s *server) cleanupMySessions(ctx context.Context, _ *struct{}) (*struct{ Body messageResponse }, error) {
	n, err := s.Auth.CleanupExpiredSessions(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	return message(fmt.Sprintf("Cleaned up %d expired sessions", n)), nil
}
