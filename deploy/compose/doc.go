// Package compose holds the tests of the Docker Compose stack
// (docker-compose.yml and the files it mounts) and of the Dockerfile. There
// is no Docker engine in CI, so what can be checked without one is checked
// here: docker-compose accepts the file, every mounted file exists, the
// configurations the containers read are valid, and they agree with each
// other.
package compose
