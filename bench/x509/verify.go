// Go crypto/x509 acceptance of leaves (bench/x509.ts): verify.go <ca.pem> <leaf.pem> <name> [<leaf.pem> <name>]…
// prints "OK\t<name>" or "FAIL\t<name>\t<error>" per leaf, like a Go TLS client verifying a server.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func load(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block in %s", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func main() {
	root, err := load(os.Args[1])
	if err != nil {
		fmt.Println("FAIL root:", err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	for i := 2; i+1 < len(os.Args); i += 2 {
		name := os.Args[i+1]
		leaf, err := load(os.Args[i])
		if err == nil {
			_, err = leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		}
		if err != nil {
			fmt.Printf("FAIL\t%s\t%v\n", name, err)
		} else {
			fmt.Printf("OK\t%s\n", name)
		}
	}
}
