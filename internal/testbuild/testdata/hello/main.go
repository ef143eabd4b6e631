// Command hello is the program testbuild's tests build.
package main

import "fmt"

func main() { fmt.Println("hello") }
