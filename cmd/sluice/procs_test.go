package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSpareProc(t *testing.T) {
	assert.Equal(t, 2, spareProc(1, 1), "GOMAXPROCS=1, one loop: one spare P")
	assert.Equal(t, 3, spareProc(2, 2), "default on 2 cores")
	assert.Equal(t, 5, spareProc(4, 2), "worker_processes above the cores")
	assert.Equal(t, 0, spareProc(2, 4), "already a spare P: leave it")
	assert.Equal(t, 0, spareProc(1, 2))
}
