package main

import (
	"fmt"
	"log/slog"

	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/engine/accesslog"
)

// openAccessLog opens the access log nginx_config.http configures:
// access_log (default logs/access.log, relative to the working directory;
// "-" for stdout), unless enable_access_log is false or access_log is "off".
// A disabled log is a nil *accesslog.Writer, whose methods do nothing.
func openAccessLog(cfg *conf.Config, loops int, log *slog.Logger) (*accesslog.Writer, error) {
	if !cfg.HTTP.EnableAccessLog || cfg.HTTP.AccessLog == "" {
		log.Info("access log off")
		return nil, nil
	}
	w, err := accesslog.New(cfg.HTTP.AccessLog, loops, accesslog.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("nginx_config.http.access_log: %w", err)
	}
	log.Info("access log", "file", w.Path())
	return w, nil
}
