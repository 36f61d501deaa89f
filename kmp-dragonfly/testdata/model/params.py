import subprocess, re
def params(name):
    t = subprocess.run(["openssl","ecparam","-name",name,"-param_enc","explicit","-text","-noout"],capture_output=True,text=True).stdout
    def grab(label):
        m = re.search(label + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", t)
        return int(m.group(1).replace(":","").replace(" ","").replace("\n",""),16)
    p=grab("Prime"); a=grab("A"); b=grab("B"); q=grab("Order")
    g = re.search(r"Generator \(uncompressed\):\s*\n((?:\s+[0-9a-f:]+\n)+)", t).group(1).replace(":","").replace(" ","").replace("\n","")
    g = bytes.fromhex(g)[1:]; n=len(g)//2
    return p,a,b,q,(int.from_bytes(g[:n],'big'),int.from_bytes(g[n:],'big'))
