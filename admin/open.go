package admin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/conf"
)

// OpenStore opens the store cfg's config_provider names: the embedded
// store in deployment.embedded.path (key prefix "/apisix"), or etcd at
// deployment.etcd.host with its prefix and timeout. The caller closes it
// after the Server's Shutdown.
func OpenStore(ctx context.Context, cfg *conf.Config, log *slog.Logger) (store.Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch p := cfg.Deployment.ConfigProvider; p {
	case conf.ProviderEtcd:
		e := cfg.Deployment.Etcd
		st, err := store.OpenEtcd(ctx, e.Host, e.Prefix, e.Timeout, store.WithLogger(log))
		if err != nil {
			return nil, err
		}
		return st, nil
	case conf.ProviderEmbedded, "":
		st, err := store.OpenEmbedded(cfg.Deployment.Embedded.Path, store.DefaultPrefix, store.WithLogger(log))
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("admin: config_provider %q has no store", p)
	}
}

// GeneratedKey returns the admin key conf.Load generated and kept in
// deployment.admin's KeyFile ("" when none was generated), for the caller
// to print once, when KeyCreated says it is new.
func GeneratedKey(cfg *conf.Config) string {
	ad := cfg.Deployment.Admin
	if !ad.KeyGenerated || ad.KeyFile == "" {
		return ""
	}
	b, err := os.ReadFile(ad.KeyFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
