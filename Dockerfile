# keizokud. Build: docker build -t keizoku .
# Run: docker run -v /etc/keizoku:/etc/keizoku -p 127.0.0.1:7481:7481 keizoku --config /etc/keizoku/keizokud.yaml
FROM node:20-bookworm-slim
WORKDIR /opt/keizoku
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY policies ./policies
USER node
ENTRYPOINT ["node", "bin/keizokud.mjs"]
