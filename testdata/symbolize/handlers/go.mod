module github.com/acme/handlers

go 1.26
