// Package openapi holds the generated OpenAPI definitions. The definitions
// themselves live in zz_generated.openapi.go, which is written by
// `make gen_openapi` and is not checked in.
package openapi
