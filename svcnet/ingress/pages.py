"""The answers the controller gives itself, byte for byte as ingress-nginx's nginx does
(its error pages end lines with CRLF, and say only "nginx")."""

from __future__ import annotations

REASONS = {
    308: "Permanent Redirect",
    400: "Bad Request",
    404: "Not Found",
    408: "Request Time-out",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    494: "Request Header Or Cookie Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
    505: "HTTP Version Not Supported",
}


def page(status: int) -> bytes:
    title = f"{status} {REASONS.get(status, 'Error')}"
    if status == 494:  # nginx's own code for it, answered as a 400 with this title
        title = "400 Request Header Or Cookie Too Large"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def response(
    status: int, *, keep_alive: bool, location: str = "", head_only: bool = False
) -> bytes:
    body = page(status)
    code = 400 if status == 494 else status
    reason = REASONS.get(status, "Error") if status != 494 else "Bad Request"
    lines = [
        f"HTTP/1.1 {code} {reason}",
        "Server: nginx",
        "Content-Type: text/html",
        f"Content-Length: {len(body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    if location:
        lines.append(f"Location: {location}")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return out if head_only else out + body
