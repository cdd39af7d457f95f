#!/bin/sh
# deploy.sh ENV ARTIFACT — a stand-in for a real deployment.
# Prints progress, then its result as structured output.
set -eu

env="$1"
artifact="$2"

echo "Deploying $artifact to $env (strategy: ${DEPLOY_STRATEGY:-none}, attempt ${STROEM_ATTEMPT:-1})"
for host in web-1 web-2 web-3; do
	echo "  $host: updated"
	sleep 0.2 2>/dev/null || sleep 1
done
echo "Deployment complete!"
echo "OUTPUT: {\"env\": \"$env\", \"url\": \"https://$env.example.com\"}"
