// Package e2e holds nackcast's end-to-end tests: senders and receivers with
// real multicast sockets on lo, real gRPC servers, real files, and real
// processes killed with signals. It has no code of its own.
package e2e
