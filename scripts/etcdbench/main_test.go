package main

import (
	"encoding/binary"
	"testing"
)

// A RangeResponse as etcd sends it: header (1), two kvs (2), count (4); pbCount finds the kvs
// and rejects a truncated message.
func TestPbCount(t *testing.T) {
	header := pbBytes(nil, 3, []byte{8, 1}) // ResponseHeader.revision etc., any bytes
	msg := pbBytes(nil, 1, header)
	msg = pbBytes(msg, 2, pbBytes(nil, 1, []byte("bench/1")))
	msg = pbBytes(msg, 2, pbBytes(nil, 1, []byte("bench/2")))
	msg = binary.AppendUvarint(msg, 4<<3|0)
	msg = binary.AppendUvarint(msg, 300)
	if n, err := pbCount(msg, 2); err != nil || n != 2 {
		t.Fatalf("pbCount = %d, %v; want 2, nil", n, err)
	}
	if n, err := pbCount(pbBytes(nil, 1, header), 2); err != nil || n != 0 {
		t.Fatalf("pbCount without kvs = %d, %v; want 0, nil", n, err)
	}
	if _, err := pbCount(msg[:len(msg)-12], 2); err == nil {
		t.Fatal("pbCount accepted a truncated message")
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Fatalf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median even = %v", m)
	}
}
