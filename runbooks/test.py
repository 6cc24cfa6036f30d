#!/usr/bin/env python3
"""Prints the first N Fibonacci numbers; shows a Python runbook reading its argv."""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("-n", type=int, default=10)
parser.add_argument("--label", default="fibonacci")
args = parser.parse_args()

a, b = 0, 1
numbers = []
for _ in range(args.n):
    numbers.append(a)
    a, b = b, a + b
print(f"{args.label} ({os.environ.get('CLOUDO_EXEC_ID', '?')}): {numbers}")
