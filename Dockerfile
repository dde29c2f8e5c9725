FROM python:3.11-slim
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["traders", "serve", "--host", "0.0.0.0", "--port", "8000"]
