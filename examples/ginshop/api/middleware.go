package api

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/gin-gonic/gin"
)

// RequestID numbers the requests in an X-Request-ID header; it calls
// c.Next, as most gin middleware does.
func RequestID() gin.HandlerFunc {
	var n atomic.Int64
	return func(c *gin.Context) {
		c.Header("X-Request-ID", strconv.FormatInt(n.Add(1), 10))
		c.Next()
	}
}

// RequireKey rejects requests without the X-API-Key key; it does not call
// c.Next: gin runs the rest of the chain after it.
func RequireKey(key string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetHeader("X-API-Key") != key {
			c.AbortWithStatus(http.StatusUnauthorized)
		}
	}
}
