// Package deploy holds dripflow's deployment files: the Dockerfile, the
// Kubernetes manifests (kubernetes/) and the Prometheus scrape
// configuration (prometheus/). It has no Go API; its tests check those files
// and the repository's docker-compose.yml against the binaries (cmd/*) and
// the DRIPFLOW_* settings that internal/config reads. See README.md here.
package deploy
