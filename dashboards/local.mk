# The Grafana dashboard and the container files (docker/), with their tests.
# test_dashboard.py runs every panel query of dashboards/kvfs.json against a
# real Prometheus scraping a real loaded cluster (needs prometheus, and
# fusermount3 once kvfsd has --mount); test_docker.sh checks docker/ without
# a Docker engine (needs docker-compose and promtool).
TESTS += tests/integration/test_dashboard.py tests/integration/test_docker.sh
EXTRA_DIST += dashboards/kvfs.json \
	tests/integration/test_dashboard.py tests/integration/test_docker.sh \
	docker/README.md docker/Dockerfile docker/Dockerfile.dockerignore docker/entrypoint.sh \
	docker/docker-compose.yml docker/prometheus.yml \
	docker/grafana/provisioning/datasources/prometheus.yml \
	docker/grafana/provisioning/dashboards/kvfs.yml
