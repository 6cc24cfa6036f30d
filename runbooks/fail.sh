#!/usr/bin/env bash
# Fails on purpose: writes to both streams, then exits 3.
echo "checking something..."
echo "something is wrong" >&2
exit 3
