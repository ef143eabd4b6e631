module github.com/acme/shop

go 1.26

require github.com/acme/handlers v0.0.0

replace github.com/acme/handlers => ../handlers
