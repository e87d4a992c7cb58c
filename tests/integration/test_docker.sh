#!/bin/sh
# The container files hold together without a Docker engine: the compose file
# validates (docker-compose config), every service has a health check and
# the ports the seed promised, nodes get FUSE and their own data volume,
# the Dockerfile builds with the same scripts as the README's quick start
# (scripts/deps.sh and scripts/build.sh, nothing else configures or makes),
# Prometheus's config passes promtool and scrapes every node, and Grafana is
# provisioned with the data source uid and the dashboard directory the
# dashboard expects, and the runtime stage installs the packages of every
# shared library kvfsd and kvfs load. Needs docker-compose and promtool (Debian:
# docker-compose, prometheus). Ends with "N passed, N failed".
set -u
top=$(cd "${top_srcdir:-$(dirname "$0")/../..}" && pwd -P)
D=$top/docker
COMPOSE="docker-compose -f $D/docker-compose.yml"
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; }
check() { # check "what" command...
	what=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then ok "$what"; else no "$what" "$(head -5 "$tmp/out")"; fi
}

# The normalised compose file, and one service's block of it.
svc() { awk -v s="  $1:" '
	$0 == s { on = 1; next }
	on && /^  [^ ]/ { on = 0 }
	on && /^[^ ]/ { on = 0 }
	on { print }' "$tmp/config"; }

if ! command -v docker-compose >/dev/null; then
	no "docker-compose is installed (Debian package docker-compose)"
elif $COMPOSE config -q 2>"$tmp/err" && $COMPOSE config >"$tmp/config" 2>>"$tmp/err"; then
	ok "docker-compose config accepts docker/docker-compose.yml"
	services=$($COMPOSE config --services 2>/dev/null | sort | tr '\n' ' ')
	if [ "$services" = "grafana kvfs1 kvfs2 kvfs3 kvfs4 prometheus " ]; then
		ok "services: 4 kvfs nodes, prometheus, grafana"
	else
		no "services: 4 kvfs nodes, prometheus, grafana" "got: $services"
	fi
	for s in kvfs1 kvfs2 kvfs3 kvfs4 prometheus grafana; do
		case $s in
		kvfs*) n=${s#kvfs}; port=$((7999 + n)):8000 ;;
		prometheus) port=9090:9090 ;;
		grafana) port=3000:3000 ;;
		esac
		svc "$s" >"$tmp/$s"
		if grep -q '^    healthcheck:' "$tmp/$s" && grep -q '^      test:' "$tmp/$s"; then
			ok "$s has a health check"
		else
			no "$s has a health check"
		fi
		if grep -Eq "^    - (127\.0\.0\.1:|0\.0\.0\.0:)?$port/tcp\$" "$tmp/$s"; then
			ok "$s publishes host port ${port%%:*}"
		else
			no "$s publishes host port ${port%%:*}" "$(grep -A2 '^    ports:' "$tmp/$s" | tr '\n' ' ')"
		fi
	done
	for n in 1 2 3 4; do
		f=$tmp/kvfs$n
		if grep -q 'readyz' "$f" && grep -q '^    - /dev/fuse:/dev/fuse$' "$f" &&
			grep -q '^    - SYS_ADMIN$' "$f" && grep -q "^    - kvfs$n-data:/var/lib/kvfs" "$f"; then
			ok "kvfs$n: /readyz health check, /dev/fuse, SYS_ADMIN, named volume kvfs$n-data"
		else
			no "kvfs$n: /readyz health check, /dev/fuse, SYS_ADMIN, named volume kvfs$n-data"
		fi
		members=1=tcp://kvfs1:7000,2=tcp://kvfs2:7000,3=tcp://kvfs3:7000,4=tcp://kvfs4:7000
		if grep -qx "    - '$n'" "$f" && grep -qx "    - $members" "$f" && grep -qx '    - 0.0.0.0:8000' "$f"; then
			ok "kvfs$n: --id $n, members by service name, REST on 0.0.0.0:8000"
		else
			no "kvfs$n: --id $n, members by service name, REST on 0.0.0.0:8000"
		fi
	done
	if grep -q '/etc/grafana/provisioning' "$tmp/grafana" &&
		grep -q "^    - $top/dashboards:/var/lib/grafana/dashboards/kvfs" "$tmp/grafana" &&
		grep -q 'GF_SECURITY_ADMIN_PASSWORD: admin' "$tmp/grafana"; then
		ok "grafana: provisioning and dashboards/ mounted, admin/admin"
	else
		no "grafana: provisioning and dashboards/ mounted, admin/admin"
	fi
else
	no "docker-compose config accepts docker/docker-compose.yml" "$(head -5 "$tmp/err")"
fi

# The Dockerfile builds with the scripts the README's quick start runs.
F=$D/Dockerfile
runs=$(awk '/^RUN /{r=1} r{print} r && !/\\$/{r=0}' "$F")
for s in deps.sh build.sh; do
	if printf '%s\n' "$runs" | grep -q "scripts/$s"; then
		ok "Dockerfile RUNs scripts/$s"
	else
		no "Dockerfile RUNs scripts/$s"
	fi
	# README -> scripts/up.sh (or test.sh) -> scripts/$s, or README -> scripts/$s.
	if grep -q "scripts/$s" "$top/README.md" ||
		{ grep -q 'scripts/up.sh' "$top/README.md" && grep -q "scripts/$s" "$top/scripts/up.sh"; }; then
		ok "the README's quick start runs scripts/$s too"
	else
		no "the README's quick start runs scripts/$s too"
	fi
done
if printf '%s\n' "$runs" | grep -Eq '(^|[ /;&])(configure|autoreconf|autogen\.sh)( |$)' ||
	printf '%s\n' "$runs" | grep -Ew 'make' | grep -vq 'install'; then
	no "Dockerfile configures/builds only through scripts/build.sh" "$(printf '%s\n' "$runs" | grep -E 'configure|autoreconf|autogen|make')"
else
	ok "Dockerfile configures/builds only through scripts/build.sh"
fi
if [ "$(grep -c '^FROM debian:12' "$F")" -ge 2 ]; then
	ok "Dockerfile: multi-stage on Debian 12"
else
	no "Dockerfile: multi-stage on Debian 12"
fi
if grep -q '^HEALTHCHECK' "$F" && awk '/^HEALTHCHECK/{r=1} r{print} r && !/\\$/{r=0}' "$F" | grep -q '/readyz'; then
	ok "Dockerfile: HEALTHCHECK on /readyz"
else
	no "Dockerfile: HEALTHCHECK on /readyz"
fi
user=$(awk '$1 == "USER" {u = $2} END {print u}' "$F")
if [ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ]; then
	ok "Dockerfile: runs as $user, not root"
else
	no "Dockerfile: runs as a non-root user"
fi
rt=$(awk '/^FROM /{n++} n >= 2' "$F")
if printf '%s\n' "$rt" | grep -q 'fuse3' && ! printf '%s\n' "$rt" | grep -Eq -- '-dev( |$)|build-essential'; then
	ok "runtime stage: fuse3, no -dev packages or compilers"
else
	no "runtime stage: fuse3, no -dev packages or compilers"
fi
# Every shared library the programs just built load directly comes from a
# package the runtime stage installs, or from the base image (libc6,
# libgcc-s1, libstdc++6: its apt needs them). (Run from the build
# directory, as make check does.)
for b in kvfsd kvfs; do
	if [ ! -x "./$b" ]; then
		no "runtime stage: has the libraries $b needs" "./$b not built (run from the build directory)"
		continue
	fi
	missing=
	for so in $(objdump -p "./$b" | awk '$1 == "NEEDED" {print $2}'); do
		path=$(ldd "./$b" | awk -v so="$so" '$1 == so && $3 ~ /^\// {print $3}')
		[ -n "$path" ] || continue # the dynamic loader itself
		pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null)
		pkg=${pkg%%:*}
		# (the sanitizers' runtimes: a build with --enable-sanitizers)
		case $pkg in libc6 | libgcc-s1 | libstdc++6 | libasan* | libubsan*) continue ;; esac
		printf '%s\n' "$rt" | grep -v '^ *#' | grep -qw -- "$pkg" || missing="$missing $so(${pkg:-no package})"
	done
	if [ -z "$missing" ]; then
		ok "runtime stage: has the libraries $b needs"
	else
		no "runtime stage: has the libraries $b needs" "missing:$missing"
	fi
done
check "docker/entrypoint.sh is valid sh" sh -n "$D/entrypoint.sh"

# Prometheus and Grafana configuration.
if command -v promtool >/dev/null; then
	check "promtool check config docker/prometheus.yml" promtool check config "$D/prometheus.yml"
else
	no "promtool is installed (Debian package prometheus)"
fi
for n in 1 2 3 4; do
	grep -q "kvfs$n:8000" "$D/prometheus.yml" || { no "prometheus scrapes kvfs$n:8000"; continue; }
	ok "prometheus scrapes kvfs$n:8000"
done
ds=$D/grafana/provisioning/datasources/prometheus.yml
dp=$D/grafana/provisioning/dashboards/kvfs.yml
if grep -q 'uid: prometheus' "$ds" && grep -q 'url: http://prometheus:9090' "$ds" &&
	grep -q '"value": "prometheus"' "$top/dashboards/kvfs.json"; then
	ok "grafana data source uid prometheus, the dashboard's default"
else
	no "grafana data source uid prometheus, the dashboard's default"
fi
if grep -q 'path: /var/lib/grafana/dashboards/kvfs$' "$dp" && [ -f "$top/dashboards/kvfs.json" ]; then
	ok "grafana dashboard provider reads the mounted dashboards/"
else
	no "grafana dashboard provider reads the mounted dashboards/"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
