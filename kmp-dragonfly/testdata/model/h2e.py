import hashlib, hmac
from sae import C, H, hm, kdf
Z={19:-10,20:-12,21:-4}
def hkdf_expand(hl,prk,info,n):
    out=b""; t=b""; i=1
    while len(out)<n:
        t=hmac.new(prk,t+info+bytes([i]),H[hl]).digest(); out+=t; i+=1
    return out[:n]
def sswu(c,u):
    p=c.p; A=c.a; B=c.b; z=Z[c.num]%p
    den=(z*z*pow(u,4,p)+z*u*u)%p
    tv1=pow(den,p-2,p)
    if tv1==0: x1=B*pow(z*A,-1,p)%p
    else: x1=(-B)*pow(A,-1,p)*(1+tv1)%p
    gx1=(x1**3+A*x1+B)%p
    if pow(gx1,(p-1)//2,p) in (0,1):
        x=x1; y=c.sqrt(gx1)
    else:
        x=z*u*u*x1%p; y=c.sqrt((x**3+A*x+B)%p)
    if (u&1)!=(y&1): y=(p-y)%p
    return (x,y)
def derive_pt(c,ssid,pw,ident):
    hl=c.hl
    seed=hmac.new(ssid,pw+(ident or b""),H[hl]).digest()
    n=c.plen+(c.plen+1)//2
    pts=[]
    for lab in (b"SAE Hash to Element u1 P1",b"SAE Hash to Element u2 P2"):
        u=int.from_bytes(hkdf_expand(hl,seed,lab,n),'big')%c.p
        pts.append(sswu(c,u))
    return c.add(pts[0],pts[1])
def pwe_from_pt(c,pt,a,b):
    hl=c.hl
    val=int.from_bytes(hmac.new(bytes(hl),max(a,b)+min(a,b),H[hl]).digest(),'big')%(c.q-1)+1
    return c.mul(val,pt)
def keys(c,P,ra,ma,rb,mb):
    hl=c.hl
    sa=(ra+ma)%c.q; Ea=c.neg(c.mul(ma,P)); sb=(rb+mb)%c.q; Eb=c.neg(c.mul(mb,P))
    K=c.mul(ra,c.add(c.mul(sb,P),Eb)); k=K[0].to_bytes(c.plen,'big')
    ssum=((sa+sb)%c.q).to_bytes(c.qlen,'big')
    keyseed=hm(hl,bytes(hl),k)
    _,ks=kdf(hl,keyseed,b"SAE KCK and PMK",ssum,(hl+32)*8)
    kck,pmk=ks[:hl],ks[hl:hl+32]
    sab=sa.to_bytes(c.qlen,'big'); sbb=sb.to_bytes(c.qlen,'big')
    conf=hm(hl,kck,(1).to_bytes(2,'little'),sab,c.enc(Ea),sbb,c.enc(Eb))
    return dict(scalar_a=sab.hex(),element_a=c.enc(Ea).hex(),kck=kck.hex(),pmk=pmk.hex(),pmkid=ssum[:16].hex(),confirm_a=conf.hex())
a=bytes.fromhex("00095b66ec1e"); b=bytes.fromhex("000b6bd90246")
c=C("prime256v1",19)
pt=derive_pt(c,b"byteme",b"mekmitasdigoat",b"psk4internet")
assert c.enc(pt).hex().startswith("b6e38c98750c684b"), c.enc(pt).hex()
assert c.enc(pwe_from_pt(c,pt,a,b)).hex().startswith("c93049b9e64000f8")
print("// J.10 H2E self-check ok")
for name,num in [("secp384r1",20),("secp521r1",21)]:
    c=C(name,num)
    pt=derive_pt(c,b"byteme",b"mekmitasdigoat",b"psk4internet")
    P=pwe_from_pt(c,pt,a,b)
    f=lambda s: int.from_bytes(hashlib.sha512(s).digest()*2,'big')%c.q
    ra,ma,rb,mb=f(b"h2e-ra%d"%num),f(b"h2e-ma%d"%num),f(b"h2e-rb%d"%num),f(b"h2e-mb%d"%num)
    o=keys(c,P,ra,ma,rb,mb)
    hx=lambda n: n.to_bytes(c.qlen,'big').hex()
    print(num)
    for k,v in [("pt",c.enc(pt).hex()),("pwe",c.enc(P).hex()),("rand_a",hx(ra)),("mask_a",hx(ma)),("rand_b",hx(rb)),("mask_b",hx(mb))]+list(o.items()):
        print(" ",k,v)
