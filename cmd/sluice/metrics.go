package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/metrics"
)

// startMetrics starts the Prometheus export server at
// plugin_attr.prometheus.export_addr + export_uri (APISIX's
// 127.0.0.1:9091/apisix/prometheus/metrics) and exports
// apisix_node_info. It returns once the address is bound; stop closes the
// server.
func startMetrics(cfg *conf.Config, version string, log *slog.Logger) (stop func(), err error) {
	p := cfg.PluginAttr.Prometheus
	addr := net.JoinHostPort(p.ExportAddr.IP, strconv.Itoa(p.ExportAddr.Port))
	metrics.NodeInfo(version)
	stop, err = metrics.Serve(addr, p.ExportURI)
	if err != nil {
		return nil, fmt.Errorf("plugin_attr.prometheus.export_addr: %w", err)
	}
	log.Info("prometheus metrics", "url", "http://"+addr+p.ExportURI)
	return stop, nil
}

// pluginAttr is config.yaml's plugin_attr as router.Builder.PluginAttr
// hands it to plugins (env.Attr(name)): the prometheus plugin reads
// default_buckets (ms) from it.
func pluginAttr(cfg *conf.Config) map[string]json.RawMessage {
	p := cfg.PluginAttr.Prometheus
	raw, err := json.Marshal(struct {
		DefaultBuckets []float64 `json:"default_buckets,omitempty"`
		ExportURI      string    `json:"export_uri,omitempty"`
	}{p.DefaultBuckets, p.ExportURI})
	if err != nil { // []float64 and string always marshal
		panic(err)
	}
	return map[string]json.RawMessage{"prometheus": raw}
}
