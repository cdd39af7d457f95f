#!/bin/sh
echo "slack-notify from the library script"
