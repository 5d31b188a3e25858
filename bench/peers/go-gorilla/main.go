// Command go-gorilla is a benchmark peer: a broadcast relay on
// gorilla/websocket in the hub shape of gorilla's chat example. One hub
// goroutine owns the client set; each client has a reader goroutine and a
// writer goroutine draining a buffered send channel; a client whose channel
// is full is dropped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// sendBuffer is how many messages a client may have queued before the
	// hub drops it as too slow (the chat example's figure).
	sendBuffer = 256
	// writeWait bounds one write, so a dropped client that stopped reading
	// cannot keep its writer (and so its connection) alive forever.
	writeWait = 10 * time.Second
)

type client struct {
	conn *websocket.Conn
	send chan []byte
}

// hub owns the client set; everything else talks to it over channels.
type hub struct {
	clients    map[*client]struct{}
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func newHub() *hub {
	return &hub{
		clients:    make(map[*client]struct{}),
		broadcast:  make(chan []byte),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = struct{}{}
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default: // too far behind: drop it rather than wait
					delete(h.clients, c)
					close(c.send)
				}
			}
		}
	}
}

// readPump relays the client's text messages until its connection fails.
func (c *client) readPump(h *hub) {
	defer func() {
		h.unregister <- c
		c.conn.Close()
	}()
	for {
		kind, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if kind == websocket.TextMessage { // only text is relayed
			h.broadcast <- msg
		}
	}
}

// writePump sends what the hub queues; a closed channel means the hub
// dropped the client.
func (c *client) writePump() {
	defer c.conn.Close()
	for msg := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			return
		}
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}

// No auth and any origin: the peers compare relays, not access control.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func serveWs(h *hub, w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered with an HTTP error
	}
	c := &client{conn: conn, send: make(chan []byte, sendBuffer)}
	h.register <- c
	go c.writePump()
	go c.readPump(h)
}

func versions() string {
	gorilla := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/gorilla/websocket" {
				gorilla = dep.Version
			}
		}
	}
	return fmt.Sprintf("%s, gorilla/websocket %s", runtime.Version(), gorilla)
}

func main() {
	showVersion := flag.Bool("version", false, "print the Go and gorilla/websocket versions and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(versions())
		return
	}

	port := os.Getenv("PORT")
	if port == "" {
		port = "5100"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	h := newHub()
	go h.run()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveWs(h, w, r)
	})}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		// Hijacked WebSocket connections are not the server's to close;
		// they end with the process.
		srv.Close()
	}()

	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
