package conf

// The APISIX keys sluice knows but does not implement. Each is accepted
// with a warning naming it (and the note, if any), so an APISIX user's
// config.yaml keeps loading; a key in none of these tables is an error.
// Sources: apache/apisix conf/config.yaml.example and apisix/cli/config.lua
// (3.x), conf/config-default.yaml (2.15).

// topIgnored: whole top-level APISIX sections.
var topIgnored = map[string]string{
	"plugins":        "every sluice plugin is always available",
	"stream_plugins": "sluice has no stream (L4) proxy",
	"discovery":      "upstream nodes are host:port, re-resolved with DNS",
	"graphql":        "",
	"wasm":           "",
	"xrpc":           "",
	"ext-plugin":     "",
	"etcd":           "APISIX 2.x layout; sluice reads deployment.etcd",
	"vault":          "",
}

var apisixIgnored = map[string]string{
	"enable_dev_mode":                         "",
	"enable_reuseport":                        "",
	"show_upstream_status_in_response_header": "",
	"enable_ipv6":                             "list IPv6 addresses in node_listen instead",
	"enable_http2":                            "",
	"proxy_protocol":                          "",
	"enable_server_tokens":                    "the Server header is always sluice/<version>",
	"extra_lua_path":                          "",
	"extra_lua_cpath":                         "",
	"lua_module_hook":                         "",
	"proxy_cache":                             "",
	"delete_uri_tail_slash":                   "",
	"normalize_uri_like_servlet":              "",
	"router":                                  "sluice matches routes as radixtree_host_uri",
	"proxy_mode":                              "sluice proxies http only",
	"stream_proxy":                            "sluice has no stream (L4) proxy",
	"dns_resolver":                            "",
	"dns_resolver_valid":                      "",
	"resolver_timeout":                        "",
	"enable_resolv_search_opt":                "",
	"enable_control":                          "",
	"control":                                 "",
	"status":                                  "",
	"disable_sync_configuration_during_start": "",
	"worker_startup_time_threshold":           "",
	"data_encryption":                         "",
	"events":                                  "",
	"lru":                                     "",
	"id":                                      "",
	"trusted_addresses":                       "",
	"disable_upstream_healthcheck":            "",
	"enable_debug":                            "",
}

var sslIgnored = map[string]string{
	"ssl_protocols":             "",
	"ssl_ciphers":               "",
	"ssl_session_tickets":       "",
	"ssl_session_timeout":       "",
	"key_encrypt_salt":          "",
	"fallback_sni":              "",
	"ssl_trusted_combined_path": "",
	"enable_http2":              "",
	"enable_http3":              "",
}

// listenIgnored: extra keys of a node_listen / ssl.listen item.
var listenIgnored = map[string]string{
	"enable_http2": "",
	"enable_http3": "",
}

var deploymentIgnored = map[string]string{
	"role_control_plane": "",
	"certs":              "",
}

var adminIgnored = map[string]string{
	"enable_admin_cors": "",
	"enable_admin_ui":   "",
	"admin_api_version": "sluice speaks v3",
	"admin_api_mtls":    "",
}

var etcdIgnored = map[string]string{
	"user":                 "",
	"password":             "",
	"tls":                  "",
	"watch_timeout":        "",
	"startup_retry":        "",
	"health_check_timeout": "",
	"resync_delay":         "",
	"use_grpc":             "",
}

var nginxIgnored = map[string]string{
	"user":                              "",
	"error_log":                         "",
	"error_log_level":                   "",
	"enable_cpu_affinity":               "",
	"worker_rlimit_nofile":              "",
	"worker_shutdown_timeout":           "",
	"max_pending_timers":                "",
	"max_running_timers":                "",
	"event":                             "",
	"envs":                              "",
	"meta":                              "",
	"stream":                            "",
	"main_configuration_snippet":        "sluice is not nginx",
	"http_configuration_snippet":        "sluice is not nginx",
	"http_server_configuration_snippet": "sluice is not nginx",
	"http_server_location_configuration_snippet": "sluice is not nginx",
	"http_admin_configuration_snippet":           "sluice is not nginx",
	"http_end_configuration_snippet":             "sluice is not nginx",
	"stream_configuration_snippet":               "sluice is not nginx",
}

var httpIgnored = map[string]string{
	"access_log_buffer":        "",
	"access_log_format":        "sluice writes its own structured line",
	"access_log_format_escape": "",
	"underscores_in_headers":   "",
	"real_ip_header":           "",
	"real_ip_recursive":        "",
	"real_ip_from":             "",
	"custom_lua_shared_dict":   "",
	"lua_shared_dict":          "",
	"proxy_ssl_server_name":    "sluice always sends SNI to HTTPS upstreams",
	"upstream":                 "set keepalive_pool on each upstream",
	"charset":                  "",
	"variables_hash_max_size":  "",
}

var prometheusIgnored = map[string]string{
	"enable_export_server": "metrics are always served on export_addr",
	"metric_prefix":        "metric names keep APISIX's apisix_ prefix",
	"prefer_name":          "",
	"metrics":              "",
	"expire":               "",
	"refresh_interval":     "",
}

// moved: keys written where APISIX 2.x (or the flattened AI guide) put them;
// an error whose hint names where sluice reads them. Ignoring them would
// leave, say, a 2.x allow_admin silently unapplied.
var moved = map[string]string{
	"enable_admin":       "did you mean apisix.enable_admin?",
	"admin_key":          "did you mean deployment.admin.admin_key?",
	"admin_key_required": "did you mean deployment.admin.admin_key_required?",
	"allow_admin":        "did you mean deployment.admin.allow_admin?",
	"admin_listen":       "did you mean deployment.admin.admin_listen?",
	"node_listen":        "did you mean apisix.node_listen?",
	"ssl":                "did you mean apisix.ssl?",
	"role":               "did you mean deployment.role?",
	"config_provider":    "did you mean deployment.role_traditional.config_provider?",
	"http":               "did you mean nginx_config.http?",
	"worker_processes":   "did you mean nginx_config.worker_processes?",
	"busy_poll":          "did you mean nginx_config.busy_poll?",
	"prometheus":         "did you mean plugin_attr.prometheus?",

	"apisix.admin_key":              "APISIX 2.x; since 3.0 it is deployment.admin.admin_key",
	"apisix.allow_admin":            "APISIX 2.x; since 3.0 it is deployment.admin.allow_admin",
	"apisix.admin_listen":           "APISIX 2.x; since 3.0 it is deployment.admin.admin_listen",
	"apisix.port_admin":             "APISIX 2.x; since 3.0 it is deployment.admin.admin_listen.port",
	"apisix.https_admin":            "APISIX 2.x; since 3.0 it is deployment.admin.https_admin",
	"apisix.admin_api_mtls":         "APISIX 2.x; since 3.0 it is deployment.admin.admin_api_mtls",
	"apisix.enable_admin_cors":      "APISIX 2.x; since 3.0 it is deployment.admin.enable_admin_cors",
	"apisix.admin_key_required":     "did you mean deployment.admin.admin_key_required?",
	"apisix.config_center":          "APISIX 2.x; since 3.0 it is deployment.role_traditional.config_provider",
	"apisix.ssl.listen_port":        "APISIX 2.x; since 3.0 it is apisix.ssl.listen",
	"deployment.config_provider":    "did you mean deployment.role_traditional.config_provider?",
	"deployment.enable_admin":       "did you mean deployment.admin.enable_admin?",
	"deployment.admin_key":          "did you mean deployment.admin.admin_key?",
	"deployment.allow_admin":        "did you mean deployment.admin.allow_admin?",
	"deployment.admin_listen":       "did you mean deployment.admin.admin_listen?",
	"deployment.admin_key_required": "did you mean deployment.admin.admin_key_required?",
}
