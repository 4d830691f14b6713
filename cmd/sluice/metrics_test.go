package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/conf"
)

func TestStartMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cfg := conf.Default()
	cfg.PluginAttr.Prometheus.ExportAddr = conf.Addr{IP: "127.0.0.1", Port: port}
	cfg.PluginAttr.Prometheus.ExportURI = "/m"
	stop, err := startMetrics(cfg, "9.9.9", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer stop()

	resp, err := http.Get("http://" + ln.Addr().String() + "/m")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), `version="9.9.9"} 1`)

	// The same address again: an error naming the key.
	_, err = startMetrics(cfg, "9.9.9", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.ErrorContains(t, err, "plugin_attr.prometheus.export_addr")
}

func TestPluginAttr(t *testing.T) {
	cfg := conf.Default()
	cfg.PluginAttr.Prometheus.DefaultBuckets = []float64{5, 50.5}
	var got struct {
		DefaultBuckets []float64 `json:"default_buckets"`
	}
	require.NoError(t, json.Unmarshal(pluginAttr(cfg)["prometheus"], &got))
	assert.Equal(t, []float64{5, 50.5}, got.DefaultBuckets)
}
