// Package netfault applies network faults (packet drops, random loss) inside the network
// namespace it runs in, with nftables rules in one table of its own.
package netfault
