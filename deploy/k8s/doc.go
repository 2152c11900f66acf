// Package k8s holds the tests of the Kubernetes manifests. kubectl is not
// available in CI, so every document is decoded with yaml.v3 and checked for
// what kubectl would refuse and for what would break chargeguard at run
// time: references between objects, probes, resources, the volume for
// /data, and a configuration file that chargeguard's own parser accepts.
package k8s
