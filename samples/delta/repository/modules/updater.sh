#!/bin/sh
# Sample updater module (does nothing).
echo "updater 1.0"
