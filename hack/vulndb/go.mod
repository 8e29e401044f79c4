module github.com/flotilla-io/flotilla/hack/vulndb

go 1.26.0

toolchain go1.27.3

require golang.org/x/mod v0.43.0
