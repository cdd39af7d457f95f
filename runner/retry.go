package runner

import (
	"context"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stroem/stroem/http/client"
)

// retryReachable calls call with the backoff of opts for as long as it fails
// because the server is unreachable or restarting (client.Retryable); any
// other error ends it at once, as does ctx. With warn set, the first failed
// try is logged as warn with its error.
func retryReachable[T any](ctx context.Context, opts []backoff.RetryOption, log *slog.Logger, warn string, call func() (T, error)) (T, error) {
	tries := 0
	return backoff.Retry(ctx, func() (T, error) {
		tries++
		v, err := call()
		if err != nil && !client.Retryable(err) {
			return v, backoff.Permanent(err)
		}
		if err != nil && tries == 1 && warn != "" {
			log.Warn(warn, "err", err)
		}
		return v, err
	}, opts...)
}

// positiveOr sets *v to def unless it is above zero.
func positiveOr[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
