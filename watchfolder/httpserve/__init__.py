"""A bounded HTTP/1.1 server for the daemon's two small servers (the media host and /metrics).

``http.server.ThreadingHTTPServer`` starts a thread per connection and waits as long as a client
likes: a few hundred half-sent requests hold as many threads, and a handler without a timeout waits
forever. Here, instead:

- One selector thread (``server``) accepts connections and receives each request (request line,
  headers and a small body; ``framing`` decides when it is complete or over a limit) without any
  thread of its own; a request not complete within ``header_seconds`` gets 408 and the connection
  is closed (a slowloris client holds a file descriptor for seconds, never a thread). An idle
  keep-alive connection is closed after the same time.
- Only a complete request reaches a worker (``workers``); at most ``workers`` worker threads exist.
  A worker's every socket write waits at most ``io_seconds``, and the whole answer must be sent
  within ``request_seconds`` (``handler.BoundedHandler.remaining``), a file also at ``min_rate``;
  past that the connection is reset.
- At most ``max_connections`` connections are open. When full, the connection that has waited
  longest for its request is dropped to make room, so a flood of slow clients cannot lock out a
  prompt one; when every connection is being answered, a new one gets 503 at once.
- Limits with a clean answer, then close: request line over ``max_request_line`` bytes → 414, header
  block over ``max_header_bytes`` or more than ``max_headers`` fields → 431, a body over
  ``max_body`` → 413, a chunked body → 411, a bad Content-Length, a folded field line or a field
  name that is not a token → 400; the handler (http.server's parser) answers 400 for a malformed
  request line.

Handlers subclass ``handler.BoundedHandler`` (a ``BaseHTTPRequestHandler``) and keep their
``do_GET``-style methods; ``server.BoundedServer`` keeps ``ThreadingHTTPServer``'s
``serve_forever``/``shutdown``/``server_close``/``server_address``. ``limits.byte_range`` reads a
``Range`` header safely.
"""
