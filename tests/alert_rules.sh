#!/usr/bin/env bash
# The Prometheus alert rules operators are given (docs/prometheus/alerts.yml): valid by
# `promtool check rules`, and each alert firing on its series by `promtool test rules`.
set -euo pipefail
cd "$(dirname "$0")/../docs/prometheus"
command -v promtool >/dev/null 2>&1 || { echo "alert_rules: promtool is required (Debian: prometheus)" >&2; exit 2; }
promtool check rules alerts.yml
promtool test rules alerts.test.yml
